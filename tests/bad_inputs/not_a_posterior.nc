run,params,tokens,loss
this file is not a posterior
