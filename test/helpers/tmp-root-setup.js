module.exports = require('./tmp-root').setup;
