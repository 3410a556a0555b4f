/* main.c — placeholder for hdhk-sim. */
int main(void)
{
	return 1;
}
