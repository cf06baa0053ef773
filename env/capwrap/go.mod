module rollback-rehearsal.local/capwrap

go 1.22
