/* head_common.h - what head.c and head_seq.c share outside their templates. */
#ifndef FRNN_HEAD_COMMON_H
#define FRNN_HEAD_COMMON_H
#include <stddef.h>
#include "team.h"

/* one member for passes over fewer elements than this per member */
#define FRNN_HEAD_MIN_SHARE 16384

/* the team members a pointwise pass over `work` elements runs on */
static int head_members(size_t work)
{
    const size_t most = work / FRNN_HEAD_MIN_SHARE + 1;
    const int nth = frnn_threads();
    return most < (size_t)nth ? (int)most : nth;
}
#endif
