"""The ``ivr`` command line: one click group, sub-commands per area.

Each area's commands live in ``ivr/commands/<area>.py``; this module only wires
them together so ``ivr --help`` lists everything.
"""

from __future__ import annotations

import click

from ivr.commands import bench, customers, flows, models, report, serve, simulate, speech, users


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="centralita")
def cli() -> None:
    """Centralita: an open-source voice call-center backend."""


cli.add_command(serve.serve)
cli.add_command(simulate.simulate)
cli.add_command(flows.flows)
cli.add_command(models.models)
cli.add_command(speech.speech)
cli.add_command(bench.bench)
cli.add_command(customers.customers)
cli.add_command(users.users)
cli.add_command(report.report_group)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
