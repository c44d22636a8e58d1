// Package config is a node's configuration: the YAML file, validated as "file:line: field: problem",
// with secrets inline or in _file paths, under the agent's flags and WATCHDOG_* environment.
package config
