// The real-node suite's Go app (tests/realnode.rs, scenario go_app_reload):
// a Go program as a container's entrypoint, standard library only.
//
//	/goapp            the runtime's default on SIGHUP: exit
//	/goapp --notify   signal.Notify(SIGHUP): logs each one and keeps running
//
// It logs to stdout (`kubectl logs`) and otherwise sleeps.
package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

func say(line string) {
	os.Stdout.WriteString("goapp: " + line + "\n")
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--notify" {
		hup := make(chan os.Signal, 4)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				say("got SIGHUP, reloading")
			}
		}()
		say("running, with signal.Notify(SIGHUP)")
	} else {
		say("running, without a SIGHUP handler of its own")
	}
	for {
		time.Sleep(time.Hour)
	}
}
