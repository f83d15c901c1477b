/*
 * How deep a JSON document may nest, one rule for every JSON path a
 * payload takes: the grammar both decoders read through (json/read.c), the
 * Lua encoder (lua/json.c), and so the schema validator, which validates
 * whatever the document parser accepts (see MAX_FRAMES in
 * schema/validate.c).
 */
#ifndef MT_JSON_LIMITS_H
#define MT_JSON_LIMITS_H

/* Arrays and objects nested inside one another, the outermost counting as
 * 1: `[[1]]` is 2 deep. Deeper input is refused with a message naming this
 * limit, never a stack overflow. 1000 is far past any real payload (and is
 * Jackson's default too). The decoders share one reader (json/read.h) that
 * enforces it without recursing; the encoder's recursion stays well under a
 * thread's stack, as does the validator's. */
#define MT_JSON_MAX_DEPTH 1000

#endif
