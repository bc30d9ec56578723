package http

import (
	"net/http"
	"time"

	"github.com/cairn-dev/cairn"
)

// codeNotImplemented is an HTTP-only error code: the running configuration
// cannot do what was asked (an online backup with MongoDB).
const codeNotImplemented = "not_implemented"

// errBackupMongo answers POST /api/backup when no Backup is configured.
var errBackupMongo = cairn.Errorf(codeNotImplemented,
	"Online backup covers the embedded store only; back up MongoDB with mongodump (see docs/deployment.md, Backups).")

// handleBackup serves POST /api/backup, for admins: a tar archive of a
// consistent copy of the data (see cairn.Backuper and cmd/cairn's backup
// for its contents), streamed as it is read. Errors before the archive
// begins are JSON error responses; an error after it began aborts the
// connection, and the archive then lacks its final backup.json entry, which
// `cairn backup` requires.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) {
	if !cairn.PrincipalFromContext(r.Context()).IsAdmin() {
		s.writeError(w, r, cairn.Errorf(cairn.EFORBIDDEN, "Only admins may take backups."))
		return
	}
	if s.Backup == nil {
		s.writeError(w, r, errBackupMongo)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // a backup may outlast the server's write timeout
	bw := &backupResponse{w: w, name: "cairn-backup-" + s.Now().UTC().Format("20060102T150405Z") + ".tar"}
	err := s.Backup.Backup(r.Context(), bw)
	switch {
	case err == nil:
		if !bw.started {
			bw.start()
		}
	case !bw.started:
		s.writeError(w, r, err)
	default:
		if r.Context().Err() == nil {
			loggerFrom(r, s.Logger).Error("backup failed mid-stream; aborting the response", "err", err)
		}
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
}

// backupResponse starts the 200 response with the archive's first bytes.
type backupResponse struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (b *backupResponse) start() {
	h := b.w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("Content-Disposition", `attachment; filename="`+b.name+`"`)
	b.w.WriteHeader(http.StatusOK)
	b.started = true
}

// Write implements io.Writer.
func (b *backupResponse) Write(p []byte) (int, error) {
	if !b.started {
		b.start()
	}
	return b.w.Write(p)
}
