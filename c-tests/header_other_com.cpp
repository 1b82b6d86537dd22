// header_other_com.c compiled as C++11.
#include "header_other_com.c"
