package hub

import (
	"syscall"
	"unsafe"
)

// siocOutqNSD is SIOCOUTQNSD (linux/sockios.h): for TCP, the bytes in the
// send queue not yet sent (write_seq - snd_nxt), Linux 2.6.38 and later.
const siocOutqNSD = 0x894B

// socketUnsent asks the kernel how many bytes fd's send queue holds that
// were not sent yet; 0 on any error.
func socketUnsent(fd uintptr) int64 {
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, siocOutqNSD, uintptr(unsafe.Pointer(&n))); errno != 0 || n < 0 {
		return 0
	}
	return int64(n)
}
