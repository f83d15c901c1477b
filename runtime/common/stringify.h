/*
 * MT_STR(x): the expansion of macro x as a string literal, so that a
 * constant and the SQL or help text that quotes it stay one definition.
 */
#ifndef MT_STRINGIFY_H
#define MT_STRINGIFY_H

#define MT_XSTR(x) #x
#define MT_STR(x) MT_XSTR(x)

#endif
