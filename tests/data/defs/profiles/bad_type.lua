-- drempel as a string breaks every guard comparing it with a number
return {
  params = {
    naam = 'Budel',
    drempel = "16",
  },
}
