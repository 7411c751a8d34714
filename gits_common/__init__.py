"""What more than one GITS service needs: settings helpers, wire schemas, errors, clients."""
