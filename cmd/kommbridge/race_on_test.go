//go:build race

package main

// raceEnabled: the race detector's instrumentation makes frames larger,
// so stack measurements are taken without it (scripts/test runs them).
const raceEnabled = true
