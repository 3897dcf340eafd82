package loadgen

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// RSS is the resident memory of a server's processes from
// /proc/PID/status, in KiB.
type RSS struct {
	RSSKB int64 `json:"rssKB"`
	// HWMKB is the peak resident size so far; for a server of several
	// processes, the sum of the peaks of those alive now.
	HWMKB int64 `json:"hwmKB"`
	// PSSKB is the proportional set size: shared pages are divided among
	// the processes sharing them, so that a forking server's processes
	// add up to the memory they really take, where RSSKB counts every
	// shared library once per process.
	PSSKB int64 `json:"pssKB,omitempty"`
	// Procs is the number of processes counted, when more than one.
	Procs int `json:"procs,omitempty"`
}

// ReadRSS reads the memory of process pid and of all its descendants, so
// that a server forking a process per connection (Cyrus) is measured whole;
// for a single-process server it is that process alone. It returns zeros
// when pid is 0 or the process cannot be read.
func ReadRSS(pid int) RSS {
	if pid <= 0 {
		return RSS{}
	}
	r, ok := readStatus(pid)
	if !ok {
		return RSS{}
	}
	kids := children(os.DirFS("/proc"))
	todo := kids[pid]
	n := 1
	for len(todo) > 0 {
		c := todo[0]
		todo = append(todo[1:], kids[c]...)
		if cr, ok := readStatus(c); ok {
			r.RSSKB += cr.RSSKB
			r.HWMKB += cr.HWMKB
			r.PSSKB += cr.PSSKB
			n++
		}
	}
	if n > 1 {
		r.Procs = n
	}
	return r
}

func readStatus(pid int) (RSS, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return RSS{}, false
	}
	defer f.Close()
	r := parseStatus(bufio.NewScanner(f))
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		r.PSSKB = parsePSS(string(b))
	}
	return r, true
}

// parsePSS reads the Pss line of /proc/PID/smaps_rollup, in KiB.
func parsePSS(rollup string) int64 {
	for _, line := range strings.Split(rollup, "\n") {
		v, ok := strings.CutPrefix(line, "Pss:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) > 0 {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return n
			}
		}
	}
	return 0
}

// children maps each process id to its children's, from the stat files of
// a /proc file system.
func children(proc fs.FS) map[int][]int {
	out := map[int][]int{}
	ents, err := fs.ReadDir(proc, ".")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(proc, e.Name()+"/stat")
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(string(b)); ok {
			out[ppid] = append(out[ppid], pid)
		}
	}
	return out
}

// parentOf reads the parent id from a /proc/PID/stat line: "pid (comm)
// state ppid ...", where comm may hold spaces and parentheses.
func parentOf(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

func parseStatus(sc *bufio.Scanner) RSS {
	var r RSS
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			r.RSSKB = n
		case "VmHWM":
			r.HWMKB = n
		}
	}
	return r
}
