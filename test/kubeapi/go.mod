module firn.test/kubeapi

go 1.19
