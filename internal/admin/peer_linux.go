//go:build linux

package admin

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer admits a peer that runs as the server's user or as root
// (SO_PEERCRED): the socket's file mode is the first guard, this one
// closes the moment between creating the socket and setting its mode.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if uid := uint32(os.Geteuid()); cred.Uid != uid && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d is neither the server's (%d) nor root", cred.Uid, uid)
	}
	return nil
}
