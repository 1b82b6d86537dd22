/* Proves the sanitizers are live: with "address" it overflows a heap block, with "undefined"
 * it overflows a signed int. The test passes only when the sanitizer reports the error. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgrpriv.h"

int main(int argc, char **argv) {
    if (argc < 2 || msgr_version() == NULL) return 2; /* the library is loaded as well */
    if (strcmp(argv[1], "address") == 0) {
        volatile char *p = (volatile char *)malloc(8);
        if (p == NULL) return 2;
        p[6 + argc] = 1; /* argc == 2: one past the end */
        free((void *)p);
        return 0;
    }
    if (strcmp(argv[1], "undefined") == 0) {
        volatile int x = INT_MAX - 1;
        int y = x + argc; /* argc == 2: overflows */
        printf("%d\n", y);
        return 0;
    }
    return 2;
}
