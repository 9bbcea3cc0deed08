"""World-model service: what-if predictions and plans over HTTP for the fleet level."""
