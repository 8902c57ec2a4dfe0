package onnx

// #include <malloc.h>
//
// // Runs when the program loads, before any thread exists: glibc fixes a
// // thread's arena when the thread first allocates, so a limit set later
// // does not undo the arenas already made.
// static void __attribute__((constructor)) anprd_cap_malloc_arenas(void) {
// 	mallopt(M_ARENA_MAX, 1);
// }
import "C"

// glibc gives each thread that allocates while another does an arena of
// its own, up to eight per core, and keeps what was freed in each: the
// lanes' reader threads, OpenCV's and ONNX Runtime's then hold far more
// than they use. The constructor above allows one arena for the process,
// which anything linking this package (the daemon, anprctl, the tests)
// gets. Two 1080p lanes: VmHWM 340 MB with glibc's default, 301 MB with
// one arena, at the same reading speed.
