// Command capwrap is an OCI runtime wrapper for hosts whose capability
// bounding set lacks some capabilities (seen: CAP_SYS_RESOURCE on some VMs).
//
// `docker run --privileged` asks runc for every capability the engine knows;
// runc then fails with "unable to apply caps: operation not permitted" because
// a process cannot gain a capability outside its bounding set. capwrap removes
// from the container's config.json (create/run) or from the --process file
// (exec) exactly the capabilities that the bounding set lacks, then execs the
// real runtime with the unchanged arguments. Nothing else is touched.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames maps Linux capability numbers to their OCI names (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// missingCaps returns the names of known capabilities absent from the bounding set.
func missingCaps() (map[string]bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "CapBnd:") {
			continue
		}
		bnd, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "CapBnd:")), 16, 64)
		if err != nil {
			return nil, err
		}
		missing := map[string]bool{}
		for i, name := range capNames {
			if bnd&(1<<uint(i)) == 0 {
				missing[name] = true
			}
		}
		return missing, nil
	}
	return nil, fmt.Errorf("CapBnd not found in /proc/self/status")
}

// filterCaps rewrites a process object's capability lists in place.
func filterCaps(process map[string]any, missing map[string]bool) {
	caps, ok := process["capabilities"].(map[string]any)
	if !ok {
		return
	}
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if s, ok := c.(string); ok && missing[s] {
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
}

// rewrite loads a JSON file, applies edit and writes it back preserving mode.
func rewrite(path string, edit func(map[string]any)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, st.Mode().Perm())
}

// flagValue finds "--name value" or "--name=value" in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if strings.HasPrefix(a, name+"=") {
			return strings.TrimPrefix(a, name+"=")
		}
	}
	return ""
}

// subcommand returns the first non-flag argument (global flags take values).
func subcommand(args []string) string {
	valued := map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if valued[a] {
				i++
			}
			continue
		}
		return a
	}
	return ""
}

func main() {
	runtime := os.Getenv("CAPWRAP_RUNTIME")
	if runtime == "" {
		runtime = "/usr/bin/runc"
	}
	args := os.Args[1:]
	if missing, err := missingCaps(); err == nil && len(missing) > 0 {
		switch subcommand(args) {
		case "create", "run":
			bundle := flagValue(args, "--bundle")
			if bundle == "" {
				bundle = flagValue(args, "-b")
			}
			if bundle == "" {
				bundle, _ = os.Getwd()
			}
			if err := rewrite(filepath.Join(bundle, "config.json"), func(doc map[string]any) {
				if p, ok := doc["process"].(map[string]any); ok {
					filterCaps(p, missing)
				}
			}); err != nil {
				fmt.Fprintln(os.Stderr, "capwrap:", err)
				os.Exit(1)
			}
		case "exec":
			if p := flagValue(args, "--process"); p != "" {
				if err := rewrite(p, func(doc map[string]any) { filterCaps(doc, missing) }); err != nil {
					fmt.Fprintln(os.Stderr, "capwrap:", err)
					os.Exit(1)
				}
			}
		}
	}
	err := syscall.Exec(runtime, append([]string{runtime}, args...), os.Environ())
	fmt.Fprintln(os.Stderr, "capwrap: exec", runtime+":", err)
	os.Exit(127)
}
