return {
  params = {
    wacht = 0,
    drempl = 20,
  },
}
