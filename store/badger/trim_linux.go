package badger

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimMappings asks the kernel to reclaim the pages of the files of the
// store in dir that Badger keeps mapped in this process (madvise
// MADV_PAGEOUT on each such mapping, found in /proc/self/maps) whose names
// end in one of suffixes: ".vlog" and ".mem" for the value and
// write-ahead logs, ".sst" for the tables. Badger writes and reads them
// all through their mappings, so every octet written or read once stays
// resident, and counted in the server's RSS, until the kernel runs short
// of memory: after an import of 100,000 messages, well over a gigabyte.
// What is reclaimed is faulted back from disk when it is read again.
//
// MADV_PAGEOUT never changes what memory holds: dirty pages are written
// back before they are dropped, and should a range be unmapped and reused
// for something else between reading the maps and the call, the advice
// costs that memory a page-in, nothing more. It reports how many octets of
// mappings it advised; errUnsupported when the kernel lacks MADV_PAGEOUT
// (before Linux 5.4).
func trimMappings(dir string, suffixes ...string) (int64, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	// The maps name files by their resolved path: a data directory
	// reached through a symbolic link must be resolved too.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return 0, err
	}
	abs = filepath.Clean(abs) + string(filepath.Separator)
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var ranges [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, path, ok := parseMapsLine(sc.Bytes())
		if !ok || !strings.HasPrefix(path, abs) || strings.ContainsRune(path[len(abs):], filepath.Separator) {
			continue
		}
		for _, sfx := range suffixes {
			if strings.HasSuffix(path, sfx) {
				ranges = append(ranges, [2]uintptr{start, end})
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	var advised int64
	for _, r := range ranges {
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_PAGEOUT)
		switch {
		case errno == unix.EINVAL:
			return advised, errUnsupported
		case errno == unix.ENOMEM:
			// Unmapped since the maps were read (Badger closed the file).
		case errno != 0:
			return advised, errno
		default:
			advised += int64(r[1] - r[0])
		}
	}
	return advised, nil
}

// residentFile returns the octets of file-backed memory resident in this
// process (RssFile of /proc/self/status, a counter the kernel keeps, so
// reading it is cheap).
func residentFile() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("badger: no RssFile in /proc/self/status")
}

// errUnsupported is returned by trimMappings where the kernel cannot
// reclaim mapped pages on request.
var errUnsupported = errors.New("badger: madvise MADV_PAGEOUT is not supported")

// parseMapsLine reads one line of /proc/self/maps: the mapping's start and
// end addresses and the path of the file it maps ("" for none).
func parseMapsLine(line []byte) (start, end uintptr, path string, ok bool) {
	fields := bytes.Fields(line)
	if len(fields) < 5 {
		return 0, 0, "", false
	}
	addrs := bytes.SplitN(fields[0], []byte("-"), 2)
	if len(addrs) != 2 {
		return 0, 0, "", false
	}
	s, err1 := strconv.ParseUint(string(addrs[0]), 16, 64)
	e, err2 := strconv.ParseUint(string(addrs[1]), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, "", false
	}
	if len(fields) >= 6 {
		// The path is the rest of the line; it may hold spaces.
		i := bytes.Index(line, fields[5])
		path = string(bytes.TrimRight(line[i:], "\n"))
	}
	return uintptr(s), uintptr(e), path, true
}
