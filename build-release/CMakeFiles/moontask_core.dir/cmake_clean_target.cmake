file(REMOVE_RECURSE
  "libmoontask_core.a"
)
