//go:build race

package main

// raceEnabled makes the end-to-end test build anprd with -race too, so the
// daemon is race-checked as a whole process and shares the build cache.
const raceEnabled = true
