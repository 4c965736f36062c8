#include <stdio.h>
int main(void)
{
    fputs("ERROR: not yet\n", stderr);
    return 1;
}
