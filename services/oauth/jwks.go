package oauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Paths of the endpoints, relative to the base URL, as advertised by Metadata.
const (
	TokenPath    = "/oauth/token"
	JWKSPath     = "/.well-known/jwks.json"
	MetadataPath = "/.well-known/oauth-authorization-server"
)

// JWK is the public JSON Web Key (RFC 7517, RFC 7518 section 6.2) of a
// signing key, as published in the JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// JWKSet is an RFC 7517 JWK Set.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// p256Coordinates returns the 32-byte big-endian x and y of a P-256 key.
func p256Coordinates(pub *ecdsa.PublicKey) (x, y []byte, err error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, nil, ErrInvalidSigningKey
	}
	point, err := pub.Bytes()
	if err != nil || len(point) != 65 || point[0] != 4 {
		return nil, nil, ErrInvalidSigningKey
	}
	return point[1:33], point[33:], nil
}

// KeyID returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of a P-256 public key: the hash of its required members
// {"crv","kty","x","y"} in lexicographic order without whitespace.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := p256Coordinates(pub)
	if err != nil {
		return "", err
	}
	canonical := `{"crv":"P-256","kty":"EC","x":"` + base64.RawURLEncoding.EncodeToString(x) +
		`","y":"` + base64.RawURLEncoding.EncodeToString(y) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// PublicJWK returns the public JWK of a signing key (use sig, alg ES256).
func PublicJWK(k SigningKey) (JWK, error) {
	if k.Private == nil {
		return JWK{}, ErrInvalidSigningKey
	}
	x, y, err := p256Coordinates(&k.Private.PublicKey)
	if err != nil {
		return JWK{}, err
	}
	return JWK{
		Kty: "EC",
		Crv: "P-256",
		X:   base64.RawURLEncoding.EncodeToString(x),
		Y:   base64.RawURLEncoding.EncodeToString(y),
		Use: "sig",
		Alg: "ES256",
		Kid: k.KID,
	}, nil
}

// JWKS returns the RFC 7517 JWK Set of every key published now: the active
// key and each key whose PublishUntil has not passed. With no keys it is
// {"keys":[]}; see PublishedJWKS.
func (i *Issuer) JWKS() []byte {
	b, _ := i.PublishedJWKS()
	return b
}

// PublishedJWKS returns the JWK Set of JWKS and the number of keys in it.
// A set without keys must not be served as a valid answer: a resource
// server caching it would refuse every token until it fetched again.
func (i *Issuer) PublishedJWKS() (doc []byte, keys int) {
	now := i.clock()
	i.mu.RLock()
	published := i.published
	i.mu.RUnlock()
	set := JWKSet{Keys: []JWK{}}
	for _, k := range published {
		if !k.published(now) {
			continue
		}
		jwk, err := PublicJWK(k)
		if err != nil {
			// SetKeys only installs valid keys.
			continue
		}
		set.Keys = append(set.Keys, jwk)
	}
	b, err := jsonMarshal(set)
	if err != nil {
		return []byte(`{"keys":[]}`), 0
	}
	return b, len(set.Keys)
}

// ServerMetadata is the RFC 8414 authorization server metadata document.
type ServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
}

// Metadata returns the RFC 8414 metadata document: issuer, token_endpoint
// (baseURL + TokenPath), jwks_uri (baseURL + JWKSPath),
// grant_types_supported [client_credentials],
// token_endpoint_auth_methods_supported [client_secret_basic,
// client_secret_post] and response_types_supported [] (no authorization
// endpoint). baseURL is the public URL of the server, with or without a
// trailing slash.
func (i *Issuer) Metadata(baseURL string) []byte {
	base := strings.TrimRight(baseURL, "/")
	b, err := jsonMarshal(ServerMetadata{
		Issuer:                            i.issuer,
		TokenEndpoint:                     base + TokenPath,
		JWKSURI:                           base + JWKSPath,
		GrantTypesSupported:               []string{GrantTypeClientCredentials},
		TokenEndpointAuthMethodsSupported: []string{AuthMethodBasic, AuthMethodPost},
		ResponseTypesSupported:            []string{},
	})
	if err != nil {
		return []byte(`{}`)
	}
	return b
}

// jsonMarshal marshals v without escaping &, < and > (URLs stay readable).
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("oauth: encode json: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
