// render_template: renders an Ollama Modelfile TEMPLATE with Go's own text/template, the
// engine Ollama runs, for the test of the Modelfile (trainer/tests/python/gguf_check.py).
// Reads {"template": "...", "messages": [{"role": "...", "content": "..."}]} as JSON on stdin,
// writes the rendered prompt to stdout. The data has the fields Ollama gives the templates
// tunewright emits: .Messages, each with .Role and .Content.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type Input struct {
	Template string    `json:"template"`
	Messages []Message `json:"messages"`
}

func main() {
	var in Input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "render_template: bad input:", err)
		os.Exit(2)
	}
	t, err := template.New("modelfile").Option("missingkey=error").Parse(in.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render_template: the template does not parse:", err)
		os.Exit(1)
	}
	data := struct{ Messages []Message }{in.Messages}
	if err := t.Execute(os.Stdout, data); err != nil {
		fmt.Fprintln(os.Stderr, "render_template: the template does not render:", err)
		os.Exit(1)
	}
}
