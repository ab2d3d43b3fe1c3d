package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultServerName is the TLS name of the lab's certificates when none is configured.
const DefaultServerName = "lab.test"

// CA is a throw-away ECDSA certificate authority generated at start, with a default server
// certificate valid for its names plus "localhost", 127.0.0.1 and ::1.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	names   []string
	leaf    tls.Certificate // the default server certificate
	leafPEM []byte
	keyPEM  []byte
}

// NewCA generates a CA and a default server certificate for names (DefaultServerName when
// none is given), "localhost", 127.0.0.1 and ::1.
func NewCA(names ...string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dnscache lab CA", Organization: []string{"dnscache lab"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = []string{DefaultServerName}
	}
	ca := &CA{cert: cert, key: key, names: names,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.leaf, ca.leafPEM, ca.keyPEM, err = ca.Issue(names...)
	if err != nil {
		return nil, err
	}
	return ca, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// Issue signs a server certificate for names (DNS names or IP addresses) plus "localhost",
// 127.0.0.1 and ::1. It returns the key pair and its PEM encodings.
func (ca *CA) Issue(names ...string) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: first(names, "localhost")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" && n != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return cert, nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return cert, nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, keyPEM, err
}

func first(s []string, def string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return def
}

// Names returns the names of the default server certificate (besides localhost and the
// loopback addresses).
func (ca *CA) Names() []string { return append([]string(nil), ca.names...) }

// PEM returns the CA certificate in PEM.
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Pool returns a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerTLS returns a server configuration (TLS 1.2 and 1.3, session tickets on) with a
// certificate for names; with no names it uses the CA's default server certificate. It
// panics only if key generation fails, which crypto/rand does not do.
func (ca *CA) ServerTLS(names ...string) *tls.Config {
	cert := ca.leaf
	if len(names) > 0 {
		var err error
		if cert, _, _, err = ca.Issue(names...); err != nil {
			panic(fmt.Sprintf("lab: issuing a certificate: %v", err))
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientTLS returns a client configuration that trusts only the CA, verifies serverName and
// resumes sessions through its own tls.ClientSessionCache.
func (ca *CA) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		RootCAs:            ca.Pool(),
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
}

// File names written by WriteFiles.
const (
	CAFile   = "ca.pem"
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// WriteFiles writes ca.pem (the CA), cert.pem and key.pem (the default server certificate
// and its PKCS#8 key) into dir, for CoreDNS's tls options and unbound.
func (ca *CA) WriteFiles(dir string) error {
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{CAFile, ca.certPEM, 0o644}, {CertFile, ca.leafPEM, 0o644}, {KeyFile, ca.keyPEM, 0o600}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}
