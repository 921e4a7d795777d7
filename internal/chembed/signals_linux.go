//go:build !nochdb

package chembed

import (
	"syscall"
	"unsafe"
)

// kernelSigaction is struct sigaction as the rt_sigaction system call takes it on Linux
// (amd64 and arm64 share this layout).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// crashSignals are the signals whose handlers chDB replaces and Go needs to turn faults into
// panics.
var crashSignals = []syscall.Signal{
	syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGILL,
	syscall.SIGTRAP, syscall.SIGABRT, syscall.SIGSYS,
}

type savedHandlers map[syscall.Signal]kernelSigaction

func saveSignalHandlers() savedHandlers {
	saved := make(savedHandlers, len(crashSignals))
	for _, sig := range crashSignals {
		var old kernelSigaction
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
			uintptr(unsafe.Pointer(&old)), unsafe.Sizeof(old.mask), 0, 0)
		if errno == 0 {
			saved[sig] = old
		}
	}
	return saved
}

func restoreSignalHandlers(saved savedHandlers) {
	for sig, act := range saved {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)),
			0, unsafe.Sizeof(act.mask), 0, 0)
	}
}
