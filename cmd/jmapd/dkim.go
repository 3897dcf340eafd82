package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/jmapd/jmapd/internal/delivery"
)

// dkimCommand runs "jmapd dkim generate DOMAIN [--algo ed25519|rsa]
// [--selector NAME] [--data DIR] [--json]": it writes a new DKIM key for
// DOMAIN into DIR/dkim, where a running server finds it at once, and
// prints the DNS TXT record to publish. Flags may stand anywhere.
func dkimCommand(args []string, stdout io.Writer) error {
	var pos []string
	opt := map[string]string{"algo": "ed25519", "selector": "jmapd", "data": dataDir(args)}
	asJSON := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "json" && !hasVal {
			asJSON = true
			continue
		}
		if _, ok := opt[name]; !ok {
			return fmt.Errorf("dkim: unknown flag --%s", name)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return fmt.Errorf("dkim: --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		opt[name] = val
	}
	if len(pos) != 2 || pos[0] != "generate" {
		return fmt.Errorf("usage: jmapd dkim generate DOMAIN [--algo ed25519|rsa] [--selector NAME]")
	}
	name, txt, err := delivery.GenerateKey(delivery.DKIMDir(opt["data"]), pos[1], opt["selector"], opt["algo"])
	if err != nil {
		return fmt.Errorf("dkim: %w", err)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"name": name, "type": "TXT", "value": txt})
	}
	_, err = fmt.Fprintf(stdout, "%s\tTXT\t%q\n", name, txt)
	return err
}
