package webhooks

import "strings"

// SecretEnvVar is the environment variable the verification snippets read the secret
// from.
const SecretEnvVar = "WEBHOOK_SECRET"

// DefaultSecretPlaceholder is shown in snippets when no placeholder is given.
const DefaultSecretPlaceholder = "whsec_…"

// Snippet is receiver code that verifies the console's deliveries with a language's
// Standard Webhooks library.
type Snippet struct {
	Language string
	// Install is the command that adds the library to a receiver's project.
	Install string
	Code    string
}

// Snippets returns verification code for Go, Python, Node.js and C#. The code reads
// the secret from the WEBHOOK_SECRET environment variable; whsecPlaceholder is only
// quoted in a comment to show its form (for example "whsec_…" or a masked secret).
// Never pass the real secret: the snippets are shown to anyone who can see the page.
func Snippets(whsecPlaceholder string) []Snippet {
	ph := sanitizePlaceholder(whsecPlaceholder)
	fill := func(code string) string {
		code = strings.ReplaceAll(code, "{{ENV}}", SecretEnvVar)
		return strings.ReplaceAll(code, "{{PLACEHOLDER}}", ph)
	}
	return []Snippet{
		{Language: "Go", Install: "go get github.com/standard-webhooks/standard-webhooks/libraries", Code: fill(goSnippet)},
		{Language: "Python", Install: "pip install standardwebhooks flask", Code: fill(pythonSnippet)},
		{Language: "Node.js", Install: "npm install standardwebhooks express", Code: fill(nodeSnippet)},
		{Language: "C#", Install: "dotnet add package StandardWebhooks", Code: fill(csharpSnippet)},
	}
}

// sanitizePlaceholder keeps the placeholder to one short line that cannot end the
// comment it is quoted in.
func sanitizePlaceholder(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F || r == '*' || r == '/' || r == '"' || r == '\'' || r == '`' || r == '\\' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return DefaultSecretPlaceholder
	}
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}

const goSnippet = `package main

import (
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	// {{ENV}} holds the endpoint secret in its whsec_ form: {{PLACEHOLDER}}
	wh, err := standardwebhooks.NewWebhook(os.Getenv("{{ENV}}"))
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("POST /webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		// Checks the signature and that webhook-timestamp is within 5 minutes.
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		// The message is authentic: handle body here.
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
`

const pythonSnippet = `import os

from flask import Flask, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# {{ENV}} holds the endpoint secret in its whsec_ form: {{PLACEHOLDER}}
wh = Webhook(os.environ["{{ENV}}"])
app = Flask(__name__)


@app.post("/webhooks")
def receive():
    try:
        # Checks the signature and that webhook-timestamp is within 5 minutes.
        event = wh.verify(request.get_data(), dict(request.headers))
    except WebhookVerificationError:
        return "invalid signature", 401
    # The message is authentic: handle event here.
    return "", 204
`

const nodeSnippet = `const express = require("express");
const { Webhook } = require("standardwebhooks");

// {{ENV}} holds the endpoint secret in its whsec_ form: {{PLACEHOLDER}}
const wh = new Webhook(process.env.{{ENV}});
const app = express();

app.post("/webhooks", express.raw({ type: "application/json" }), (req, res) => {
  let event;
  try {
    // Checks the signature and that webhook-timestamp is within 5 minutes.
    event = wh.verify(req.body, req.headers);
  } catch (err) {
    return res.status(401).send("invalid signature");
  }
  // The message is authentic: handle event here.
  res.sendStatus(204);
});

app.listen(8080);
`

const csharpSnippet = `using System.Net;
using StandardWebhooks;
using StandardWebhooks.Exceptions;

// {{ENV}} holds the endpoint secret in its whsec_ form: {{PLACEHOLDER}}
var wh = new Webhook(Environment.GetEnvironmentVariable("{{ENV}}"));
var app = WebApplication.Create(args);

app.MapPost("/webhooks", async (HttpRequest request) =>
{
    using var reader = new StreamReader(request.Body);
    var payload = await reader.ReadToEndAsync();
    var headers = new WebHeaderCollection();
    foreach (var (name, value) in request.Headers)
    {
        headers.Add(name, value.ToString());
    }
    try
    {
        // Checks the signature and that webhook-timestamp is within 5 minutes.
        wh.Verify(payload, headers);
    }
    catch (WebhookVerificationException)
    {
        return Results.Unauthorized();
    }
    // The message is authentic: handle payload here.
    return Results.NoContent();
});

app.Run();
`
