//go:build !linux

package badger

import "errors"

// errUnsupported is returned by trimMappings where the kernel cannot
// reclaim mapped pages on request.
var errUnsupported = errors.New("badger: reclaiming mapped pages is not supported here")

// trimMappings is a no-op outside Linux.
func trimMappings(string, ...string) (int64, error) { return 0, errUnsupported }

// residentFile is unknown outside Linux.
func residentFile() (int64, error) { return 0, errUnsupported }
