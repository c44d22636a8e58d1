// Package cli is the client commands of the watchdog binary (ping, run, services, config, ...): each
// parses its flags, asks the cluster through package client and prints the answer. Lookup finds one.
package cli
