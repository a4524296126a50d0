"""One module per tab of the app: each builds its components and wires its own events (``bertdemo.ui.app``)."""
