/* main.c — placeholder for powermeterd. */
int main(void)
{
	return 1;
}
