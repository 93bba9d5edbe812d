package app

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keyconsole/models"
	"keyconsole/models/modelstest"
	"keyconsole/services/audit"
	"keyconsole/services/sshkeys"
)

func TestSFTPMetricsSeries(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	store := models.NewSSHKeyStore(db)
	auth, err := sshkeys.NewAuthenticator(db, store, audit.NewRecorder(db, models.NewAuditStore(db), time.Now), sshkeys.AuthConfig{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg, sftpMetrics(auth)); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			s := f.GetName()
			for _, l := range m.GetLabel() {
				s += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got = append(got, s)
		}
	}
	sort.Strings(got)
	want := []string{
		"keyconsole_audit_aggregated_lost_total{records=sftp_refusals}",
		"keyconsole_audit_aggregated_overflow_total{records=sftp_refusals}",
		"keyconsole_audit_aggregated_pending{records=sftp_refusals}",
		"keyconsole_audit_aggregated_write_errors_total{records=sftp_refusals}",
		"keyconsole_audit_aggregated_written_at_once_total{records=sftp_refusals}",
		"keyconsole_sftp_login_refusals_total{reason=expired}",
		"keyconsole_sftp_login_refusals_total{reason=rate_limited}",
		"keyconsole_sftp_login_refusals_total{reason=unknown_key}",
		"keyconsole_sftp_login_refusals_total{reason=wrong_account}",
		"keyconsole_sftp_logins_total",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
