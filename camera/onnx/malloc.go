package onnx

// #include <malloc.h>
import "C"

// mallocArenas caps glibc's malloc arenas. glibc gives each thread that
// allocates at once an arena of its own, up to eight per core, and keeps
// freed memory in each; the lanes' reader threads and ONNX Runtime's
// allocations then hold far more than they use. Two 1080p lanes: 336 MB
// resident with glibc's default, 309 MB with two arenas, at the same
// speed.
const mallocArenas = 2

func capMallocArenas() { C.mallopt(C.M_ARENA_MAX, mallocArenas) }
