"""gits_ml: what more than one service needs of PyCaret and the demo, kept apart from the
wire contracts in gits_common: training and model files (modeling) and the demo use
case's data (demo). gits_common never imports it."""
