/* main.c — placeholder while config.c is being written. */
int main(void)
{
	return 1;
}
