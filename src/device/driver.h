/* driver.h — a module type: its register map and how registers become
 * values and facts. hdhk.c is the only driver today; a new module type is one
 * new file with a 'struct pm_driver' plus one line in drivers.c. */
#ifndef PM_DRIVER_H
#define PM_DRIVER_H

#include <stddef.h>
#include <stdint.h>

struct pm_buf;

/* Modbus application protocol v1.1b3, 6.3: at most 125 holding registers in
 * one FC 0x03 answer. */
#define PM_MODBUS_MAX_READ 125

/* A run of consecutive holding registers and what one count means. */
struct pm_register_block {
	uint16_t first;		/* first register number */
	uint16_t count;
	double unit;		/* physical units per count */
	const char *unit_name;	/* "A", "Hz" */
};

/* One fact shown by `powermeter info`, decoded from registers
 * first..first+count-1 of the module's map. */
struct pm_info_field {
	const char *name;	/* "version", "line settings", ... */
	uint16_t first;
	uint16_t count;
	/* Appends the field's text (e.g. "6.2.8") to out; regs[0] is register
	 * 'first'. Returns 0 or a negative error (from pm_buf). */
	int (*decode)(const uint16_t *regs, struct pm_buf *out);
};

struct pm_driver {
	const char *model;		/* config "model", e.g. "hdhk" */
	const char *description;
	unsigned channels;		/* <= PM_CHANNELS */
	uint16_t n_registers;		/* size of the register map */
	/* Currents. The configured input's "ratio" converts a count to
	 * amperes (amps = raw x ratio); 'unit' is the module's nominal
	 * resolution, what ratio is for the stock CT. */
	struct pm_register_block current;
	struct pm_register_block frequency;	/* amps x unit = Hz */
	/* What `powermeter info` reads, one FC 0x03 request per block. */
	const struct pm_register_block *info_blocks;
	size_t n_info_blocks;
	const struct pm_info_field *info_fields;
	size_t n_info_fields;
	/* Where the module keeps its own Modbus address (`powermeter
	 * address`): the bits 'address_mask' of holding register
	 * 'address_register', the other bits kept as they are when it is
	 * rewritten with FC 0x06. A mask of 0: not settable over the bus. */
	uint16_t address_register;
	uint16_t address_mask;
};

/* A register count in the block's unit. A unit of 1/n divides by n, so that
 * 499 counts of 0.1 Hz print as 49.9, not 49.900000000000006. */
static inline double pm_block_value(const struct pm_register_block *blk,
				    uint16_t raw)
{
	double per_unit = 1.0 / blk->unit;
	double n = (double)(long)(per_unit + 0.5);

	if (n >= 1 && n * blk->unit == 1.0)
		return raw / n;
	return raw * blk->unit;
}

/* The registered drivers, NULL-terminated (drivers.c). */
extern const struct pm_driver *const pm_drivers[];

/* The HDHK 16-channel AC current module (hdhk.c). */
extern const struct pm_driver pm_driver_hdhk;

/* The driver for a config "model" name (NULL: the default, "hdhk"), or NULL
 * when unknown. */
const struct pm_driver *pm_driver_find(const char *model);

/* Appends "name: text\n" for every info field of 'drv', decoded from 'map'
 * (map[i] is register i, drv->n_registers entries; only the registers of
 * drv->info_blocks need be filled). Names are padded to one column.
 * Returns 0 or a negative error; on error 'out' is as it was. */
int pm_driver_describe(const struct pm_driver *drv, const uint16_t *map,
		       struct pm_buf *out);

#endif
