package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSS is a process's resident memory from /proc/PID/status, in KiB.
type RSS struct {
	RSSKB int64 `json:"rssKB"`
	// HWMKB is the peak resident size so far.
	HWMKB int64 `json:"hwmKB"`
}

// ReadRSS reads the memory of process pid; it returns zeros when pid is 0
// or the process cannot be read.
func ReadRSS(pid int) RSS {
	if pid <= 0 {
		return RSS{}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return RSS{}
	}
	defer f.Close()
	return parseStatus(bufio.NewScanner(f))
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
