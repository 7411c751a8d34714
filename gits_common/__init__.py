"""What more than one GITS service needs: settings helpers, wire schemas, errors, clients."""

__version__ = "0.1.0"
