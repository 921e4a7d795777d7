package dnswire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParsePorts parses a comma-separated list of DNS ports, as the --ports flags take it.
func ParsePorts(s string) ([]uint16, error) {
	var ports []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("--ports: %q is not a port number (1-65535)", f)
		}
		ports = append(ports, uint16(n))
	}
	if len(ports) == 0 {
		return nil, errors.New("--ports: no port given")
	}
	return ports, nil
}
