"""MkDocs hook: the reference pages' generated parts (xlt.cli.reference), written as the site builds."""
from xlt.cli.reference import cli_reference, config_reference

GENERATED = {"reference/configuration.md": config_reference, "reference/cli.md": cli_reference}


def on_page_markdown(markdown, page, config, files):
    make = GENERATED.get(page.file.src_uri)
    return markdown + "\n" + make() + "\n" if make else markdown
