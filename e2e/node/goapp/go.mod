module driftprobe.local/goapp

go 1.21
