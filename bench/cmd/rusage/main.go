// Command rusage runs a command and reports its wall time, CPU time (user and system, from the
// child's rusage) and peak resident set size, as one tab-separated line:
//
//	rusage [-o FILE] [-stdout FILE] -- COMMAND ARGS...
//	wall_s  user_s  sys_s  cpu_s  maxrss_kb  exit
//
// The line goes to -o (appended) or stderr. The command's stdout goes to -stdout (default: this
// program's stdout; "/dev/null" to discard it), its stderr to this program's stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	out := flag.String("o", "", "append the figures to this file instead of stderr")
	stdout := flag.String("stdout", "", "send the command's stdout to this file")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rusage [-o FILE] [-stdout FILE] -- COMMAND ARGS...")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
	if *stdout != "" {
		f, err := os.Create(*stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rusage:", err)
			os.Exit(2)
		}
		defer f.Close()
		cmd.Stdout = f
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
		os.Exit(2)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "rusage: no resource usage for the child")
		os.Exit(2)
	}
	user := time.Duration(ru.Utime.Nano())
	sys := time.Duration(ru.Stime.Nano())
	line := fmt.Sprintf("%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\n", wall.Seconds(), user.Seconds(), sys.Seconds(), (user + sys).Seconds(), ru.Maxrss, code)
	w := os.Stderr
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rusage:", err)
			os.Exit(2)
		}
		defer f.Close()
		w = f
	}
	fmt.Fprint(w, line)
	if code != 0 {
		os.Exit(code)
	}
}
