// Command launcher starts govmomi's vCenter simulator (vcsim) as a standalone ESXi host for
// Pallas tests: 127.0.0.1, the port given (0: an ephemeral one), HTTPS, the user and password
// given (any other pair is refused with InvalidLogin). It prints one JSON line on stdout with
// the SDK URL, the credentials and the SHA-256 thumbprint of its certificate, then serves until
// it gets SIGTERM/SIGINT or its stdin closes (so it dies with the test that started it).
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

type ready struct {
	URL        string `json:"url"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	User       string `json:"user"`
	Password   string `json:"password"`
	Thumbprint string `json:"thumbprint"`
	CertFile   string `json:"certFile"`
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: ephemeral)")
	user := flag.String("user", "root", "the only user name accepted")
	password := flag.String("password", "pallas-vcsim", "the only password accepted")
	certDir := flag.String("cert-dir", os.TempDir(), "where to write the certificate's PEM")
	vms := flag.Int("vm", 2, "VMs the model starts with")
	flag.Parse()

	model := simulator.ESX()
	model.Machine = *vms
	if err := model.Create(); err != nil {
		fail("create model: %v", err)
	}
	defer model.Remove()

	// A Listen user other than simulator.DefaultLogin makes the SessionManager accept only
	// that pair (see SessionManager.validLogin).
	model.Service.Listen = &url.URL{
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)),
		User: url.UserPassword(*user, *password),
	}
	// No certificate configured: the server uses Go's built-in localhost test certificate
	// (SANs 127.0.0.1 and ::1), the same in every run, so a restart keeps the thumbprint.
	model.Service.TLS = new(tls.Config)
	server := model.Service.NewServer()
	defer server.Close()

	cert := server.Certificate()
	sum := sha256.Sum256(cert.Raw)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	certFile := filepath.Join(*certDir, fmt.Sprintf("vcsim-%d.pem", os.Getpid()))
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o644); err != nil {
		fail("write certificate: %v", err)
	}
	defer os.Remove(certFile)

	u := *server.URL
	p, _ := strconv.Atoi(u.Port())
	u.User = nil
	out, _ := json.Marshal(ready{
		URL:        u.String(),
		Host:       u.Hostname(),
		Port:       p,
		User:       *user,
		Password:   *password,
		Thumbprint: strings.Join(hexes, ":"),
		CertFile:   certFile,
	})
	fmt.Println(string(out))

	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop <- syscall.SIGTERM
	}()
	<-stop
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim launcher: "+format+"\n", args...)
	os.Exit(1)
}
