// Package config is what a watchdog node runs with: the agent's flags and
// WATCHDOG_* environment over the YAML config file, which it validates
// ("file:line: field: problem"), reading secrets inline or from _file paths.
package config
