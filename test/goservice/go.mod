module firn.test/goservice

go 1.19
