// Package client is a Go client of a watchdog cluster: it sends heartbeats
// (Ping, Start, Fail, or Beat in the background), reads, defines and
// deletes the services (Services, Service, Define, Delete), trying each node
// it knows in turn until one answers or the context ends.
// Do and DoAt send any other request of the API the same way (the watchdog
// CLI sends all its requests through them). TokenFromEnv reads the API
// token from the environment as the CLI does.
package client
