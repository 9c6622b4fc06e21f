package model

import (
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// The placeholders of each place a template may appear in a connection
// (besides template.Connectivity for header mappings, target addresses and
// extraFields).
var (
	headersOnly                   = template.Set{template.Header}
	enforcementFiltersWithFeature = template.Set{template.Thing, template.Policy, template.Entity, template.Feature}
)

// compileTemplate compiles tmpl with the placeholders of its place, as
// PlaceholderFilter.validate runs the pipeline with the functions'
// signatures; it returns the Ditto exception thrown (not yet wrapped). The
// data plane compiles the same text with the same engine, so what validates
// here is what runs.
func compileTemplate(tmpl string, set template.Set) (*template.Template, *ditto.Error) {
	t, err := set.Compile(tmpl)
	if err != nil {
		d, ok := template.AsDitto(err)
		if !ok {
			d = ditto.InternalError(err.Error())
		}
		return nil, d
	}
	return t, nil
}

func placeholderErr(tmpl string, set template.Set) *ditto.Error {
	_, e := compileTemplate(tmpl, set)
	return e
}

// validateTemplate is AbstractProtocolValidator.validateTemplate: placeholder
// errors become connection.configuration.invalid with their message.
func validateTemplate(tmpl string, set template.Set) error {
	if e := placeholderErr(tmpl, set); e != nil {
		return asConfigurationInvalid(e)
	}
	return nil
}

func asConfigurationInvalid(e *ditto.Error) error {
	desc := e.Description
	if desc == "" {
		desc = "Check the spelling and syntax of the placeholder."
	}
	return ditto.ConfigurationInvalidDesc(e.Message, desc)
}
