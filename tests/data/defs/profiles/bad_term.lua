return { params = { wacht = 2.5 } }
