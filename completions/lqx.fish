complete --keep-order --exclusive --command lqx --arguments "(COMPLETE=fish lqx -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
